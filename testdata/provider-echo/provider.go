package main

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// echoProvider is the provider "echo". It has no configuration.
type echoProvider struct {
	version string
}

var _ provider.Provider = (*echoProvider)(nil)

// newProvider returns the constructor providerserver.Serve expects.
func newProvider(version string) func() provider.Provider {
	return func() provider.Provider { return &echoProvider{version: version} }
}

// Metadata names the provider type and reports its version.
func (p *echoProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "echo"
	resp.Version = p.version
}

// Schema declares an empty provider configuration block.
func (p *echoProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = pschema.Schema{Description: "Echoes its input; used to test provider mirrors."}
}

// Configure has nothing to configure.
func (p *echoProvider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

// DataSources lists the single data source, echo.
func (p *echoProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{func() datasource.DataSource { return echoDataSource{} }}
}

// Resources is empty: the provider has no managed resources.
func (p *echoProvider) Resources(context.Context) []func() resource.Resource {
	return nil
}

// echoDataSource is the data source "echo": output is a copy of input.
type echoDataSource struct{}

var _ datasource.DataSource = echoDataSource{}

// echoModel is the data source's state.
type echoModel struct {
	Input  types.String `tfsdk:"input"`
	Output types.String `tfsdk:"output"`
}

// Metadata names the data source "echo" (the provider type name alone).
func (echoDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName
}

// Schema declares the required input and the computed output.
func (echoDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = dschema.Schema{
		Description: "Returns its input unchanged.",
		Attributes: map[string]dschema.Attribute{
			"input":  dschema.StringAttribute{Required: true, Description: "Any string."},
			"output": dschema.StringAttribute{Computed: true, Description: "The same string as input."},
		},
	}
}

// Read copies input to output.
func (echoDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m echoModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	m.Output = m.Input
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
