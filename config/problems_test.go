package config

// problemCase is a plan with mistakes and the exact problems Parse must
// report, all of them, in order. The fuzz target seeds its corpus from these.
type problemCase struct {
	name string
	yaml string
	want []string
}

var problemCases = []problemCase{
	{name: "empty file", yaml: ``, want: []string{
		"mirror.yaml: plan file is empty; it needs at least \"version: 1\"",
	}},
	{name: "only comments", yaml: "# nothing here\n", want: []string{
		"mirror.yaml: plan file is empty; it needs at least \"version: 1\"",
	}},
	{name: "yaml syntax error", yaml: "version: 1\nproviders: [\n", want: []string{
		"mirror.yaml:2: YAML syntax error: did not find expected node content",
	}},
	{name: "yaml tab indentation", yaml: "version: 1\ntarget:\n\tregistry: x\n", want: []string{
		"mirror.yaml:3: YAML syntax error: found character that cannot start any token",
	}},
	{name: "two documents", yaml: "version: 1\n---\nversion: 1\n", want: []string{
		"mirror.yaml:3:1: a plan is a single YAML document; remove the \"---\" and what follows",
	}},
	{name: "not a mapping", yaml: "- version: 1\n", want: []string{
		"mirror.yaml:1:1: the plan must be a mapping, not a list",
	}},
	{name: "missing version", yaml: "platforms: [linux_amd64]\n", want: []string{
		"mirror.yaml:1:1: missing required key \"version\"; add \"version: 1\"",
	}},
	{name: "null version", yaml: "version:\nplatforms: [linux_amd64]\n", want: []string{
		"mirror.yaml:1:1: missing required key \"version\"; add \"version: 1\"",
	}},
	{name: "unknown provenance mode", yaml: "version: 1\ntarget:\n  provenance: referrer\n", want: []string{
		"mirror.yaml:3:15: target.provenance is \"referrer\"; want one of auto, referrers, tag, off",
	}},
	{name: "version 2", yaml: "version: 2\n", want: []string{
		"mirror.yaml:1:10: unsupported plan version 2; this program reads version 1",
	}},
	{name: "version as string", yaml: "version: \"1\"\n", want: []string{
		"mirror.yaml:1:10: version must be the number 1, not the string \"1\"",
	}},
	{name: "unknown top-level key", yaml: "version: 1\nprovider: []\nextra: true\n", want: []string{
		"mirror.yaml:2:1: unknown key \"provider\" in the plan; did you mean \"providers\"?",
		"mirror.yaml:3:1: unknown key \"extra\" in the plan; known keys: version, target, upstream, platforms, providers, modules, module_dependencies, trust",
	}},
	{name: "unknown key in target", yaml: "version: 1\ntarget:\n  registry: localhost:5000\n  insecured: true\n", want: []string{
		"mirror.yaml:4:3: unknown key \"insecured\" in target; did you mean \"insecure\"?",
	}},
	{name: "unknown key in upstream", yaml: "version: 1\nupstream:\n  proxy: http://proxy\n", want: []string{
		"mirror.yaml:3:3: unknown key \"proxy\" in upstream; known keys: ca_file, hosts",
	}},
	{name: "unknown key in provider", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: hashicorp/aws\n    versions: \"~> 5.0\"\n    version: \"5.0\"\n", want: []string{
		"mirror.yaml:6:5: unknown key \"version\" in providers[0]; did you mean \"versions\"?",
	}},
	{name: "unknown key in module", yaml: "version: 1\nmodules:\n  - source: terraform-aws-modules/vpc/aws\n    versions: \"~> 5.0\"\n    platforms: [linux_amd64]\n", want: []string{
		"mirror.yaml:5:5: unknown key \"platforms\" in modules[0]; known keys: source, versions, newest",
	}},
	{name: "newest zero, negative, text", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: hashicorp/aws\n    versions: \"~> 5.0\"\n    newest: 0\nmodules:\n  - source: a/b/c\n    versions: \">= 1.0\"\n    newest: \"3\"\n  - source: a/d/c\n    versions: \">= 1.0\"\n    newest: -2\n", want: []string{
		"mirror.yaml:6:13: providers[0].newest is 0; keep at least 1 version, or remove the key to keep every version the constraint allows",
		"mirror.yaml:10:13: modules[0].newest must be a whole number of versions to keep, not the string \"3\"",
		"mirror.yaml:13:13: modules[1].newest is -2; keep at least 1 version, or remove the key to keep every version the constraint allows",
	}},
	{name: "unknown key in host", yaml: "version: 1\nupstream:\n  hosts:\n    registry.opentofu.org:\n      service:\n        providers.v1: https://proxy.example/v1/providers/\n", want: []string{
		"mirror.yaml:5:7: unknown key \"service\" in upstream.hosts.registry.opentofu.org; did you mean \"services\"?",
	}},
	{name: "unknown service", yaml: "version: 1\nupstream:\n  hosts:\n    registry.opentofu.org:\n      services:\n        login.v1: https://proxy.example/login\n", want: []string{
		"mirror.yaml:6:9: unknown key \"login.v1\" in upstream.hosts.registry.opentofu.org.services; known keys: providers.v1, modules.v1",
	}},
	{name: "duplicate key", yaml: "version: 1\ntarget:\n  registry: localhost:5000\n  registry: localhost:5001\n", want: []string{
		"mirror.yaml:4:3: duplicate key \"registry\" in target (first at line 3, column 3)",
	}},
	{name: "duplicate key in provider", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: hashicorp/aws\n    source: hashicorp/null\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:5:5: duplicate key \"source\" in providers[0] (first at line 4, column 5)",
	}},
	{name: "duplicate host", yaml: "version: 1\nupstream:\n  hosts:\n    Registry.OpenTofu.org: {}\n    registry.opentofu.org: {}\n", want: []string{
		"mirror.yaml:5:5: duplicate host \"registry.opentofu.org\" in upstream.hosts (first at line 4, column 5)",
	}},
	{name: "merge key", yaml: "version: 1\nx: &t {registry: localhost:5000}\ntarget:\n  <<: *t\n", want: []string{
		"mirror.yaml:2:1: unknown key \"x\" in the plan; known keys: version, target, upstream, platforms, providers, modules, module_dependencies, trust",
		"mirror.yaml:4:3: YAML merge keys (<<) are not supported in target; write the keys out",
	}},
	{name: "providers is a string", yaml: "version: 1\nproviders: \"x\"\n", want: []string{
		"mirror.yaml:2:12: providers must be a list, not the string \"x\"; write [x]",
	}},
	{name: "modules is a mapping", yaml: "version: 1\nmodules: {source: a/b/c}\n", want: []string{
		"mirror.yaml:2:10: modules must be a list, not a mapping",
	}},
	{name: "target is a list", yaml: "version: 1\ntarget: [localhost]\n", want: []string{
		"mirror.yaml:2:9: target must be a mapping, not a list",
	}},
	{name: "insecure maybe", yaml: "version: 1\ntarget:\n  insecure: maybe\n", want: []string{
		"mirror.yaml:3:13: target.insecure must be true or false, not the string \"maybe\"",
	}},
	{name: "ca_file mapping", yaml: "version: 1\ntarget:\n  ca_file: {path: x}\nupstream:\n  ca_file: [x]\n", want: []string{
		"mirror.yaml:3:12: target.ca_file must be a string, not a mapping",
		"mirror.yaml:5:12: upstream.ca_file must be a string, not a list",
	}},
	{name: "versions is a list", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: hashicorp/aws\n    versions: [1]\n", want: []string{
		"mirror.yaml:5:15: providers[0].versions must be a string, not a list",
	}},
	{name: "provider item is a string", yaml: "version: 1\nproviders:\n  - hashicorp/aws\n", want: []string{
		"mirror.yaml:3:5: providers[0] must be a mapping, not the string \"hashicorp/aws\"",
	}},
	{name: "platforms is a string", yaml: "version: 1\nplatforms: linux_amd64\n", want: []string{
		"mirror.yaml:2:12: platforms must be a list, not the string \"linux_amd64\"; write [linux_amd64]",
	}},
	{name: "hosts is a list", yaml: "version: 1\nupstream:\n  hosts: [registry.opentofu.org]\n", want: []string{
		"mirror.yaml:3:10: upstream.hosts must be a mapping, not a list",
	}},
	{name: "provider source too few parts", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: aws\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:4:13: invalid provider source address \"aws\": want [HOSTNAME/]NAMESPACE/TYPE, e.g. hashicorp/aws",
	}},
	{name: "provider source too many parts", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: a.example/b/c/d\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:4:13: invalid provider source address \"a.example/b/c/d\": want [HOSTNAME/]NAMESPACE/TYPE, e.g. hashicorp/aws",
	}},
	{name: "provider source empty parts", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: /aws\n    versions: \"1.0.0\"\n  - source: hashicorp/\n    versions: \"1.0.0\"\n  - source: \"\"\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:4:13: invalid provider source address \"/aws\": namespace \"\": must have at least one character",
		"mirror.yaml:6:13: invalid provider source address \"hashicorp/\": type \"\": must have at least one character",
		"mirror.yaml:8:13: providers[2].source is empty",
	}},
	{name: "provider source bad characters", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: hashi_corp/aws\n    versions: \"1.0.0\"\n  - source: hashicorp/1password\n    versions: \"1.0.0\"\n  - source: hashicorp/-aws\n    versions: \"1.0.0\"\n  - source: hashicorp/terraform-provider-aws\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:4:13: invalid provider source address \"hashi_corp/aws\": namespace \"hashi_corp\": must contain only letters, digits, and dashes, and may not use leading or trailing dashes",
		"mirror.yaml:8:13: invalid provider source address \"hashicorp/-aws\": type \"-aws\": must contain only letters, digits, and dashes, and may not use leading or trailing dashes",
		"mirror.yaml:10:13: invalid provider source address \"hashicorp/terraform-provider-aws\": Provider source \"hashicorp/terraform-provider-aws\" has a type with the prefix \"terraform-provider-\", which isn't valid. Although that prefix is often used in the names of version control repositories for Terraform providers, provider source strings should not include it. Did you mean \"hashicorp/aws\"?",
	}},
	{name: "provider source bad hostname", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: bad_host/hashicorp/aws\n    versions: \"1.0.0\"\n  - source: example.com:99999/hashicorp/aws\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:4:13: invalid provider source address \"bad_host/hashicorp/aws\": hostname \"bad_host\" is not a DNS name with an optional :port: idna: disallowed rune U+005F",
		"mirror.yaml:6:13: invalid provider source address \"example.com:99999/hashicorp/aws\": hostname \"example.com:99999\" is not a DNS name with an optional :port: port number is greater than 65535",
	}},
	{name: "module source bad", yaml: "version: 1\nmodules:\n  - source: vpc/aws\n    versions: \"1.0.0\"\n  - source: terraform-aws-modules/vpc/AWS\n    versions: \"1.0.0\"\n  - source: terraform-aws-modules/vpc_/aws\n    versions: \"1.0.0\"\n  - source: bad_host/a/b/c\n    versions: \"1.0.0\"\n  - source: a/b/c//sub\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:3:13: invalid module source address \"vpc/aws\": want [HOSTNAME/]NAMESPACE/NAME/SYSTEM, e.g. terraform-aws-modules/vpc/aws",
		"mirror.yaml:5:13: invalid module source address \"terraform-aws-modules/vpc/AWS\": invalid target system \"AWS\": must be between one and 64 ASCII letters or digits",
		"mirror.yaml:7:13: invalid module source address \"terraform-aws-modules/vpc_/aws\": invalid module name \"vpc_\": must be between one and 64 characters, including ASCII letters, digits, dashes, and underscores, where dashes and underscores may not be the prefix or suffix",
		"mirror.yaml:9:13: invalid module source address \"bad_host/a/b/c\": hostname \"bad_host\" is not a DNS name with an optional :port: idna: disallowed rune U+005F",
		"mirror.yaml:11:13: invalid module source address \"a/b/c//sub\": a //subdirectory is not part of a registry address; name the module package only",
	}},
	{name: "missing source and versions", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - platforms: [linux_arm64]\nmodules:\n  - source: a/b/c\n", want: []string{
		"mirror.yaml:4:5: providers[0]: missing required key \"source\"",
		"mirror.yaml:4:5: providers[0]: missing required key \"versions\"",
		"mirror.yaml:6:5: modules[0]: missing required key \"versions\"",
	}},
	{name: "empty versions", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: hashicorp/aws\n    versions: \"\"\n", want: []string{
		"mirror.yaml:5:15: providers[0].versions is empty",
	}},
	{name: "bad constraints", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: hashicorp/a\n    versions: \"v1.2.0\"\n  - source: hashicorp/b\n    versions: \">= 1.0,\"\n  - source: hashicorp/c\n    versions: \"~> 1.x\"\n  - source: hashicorp/d\n    versions: \"=> 1.0\"\n  - source: hashicorp/e\n    versions: \"1.2.3.4\"\n  - source: hashicorp/f\n    versions: \"latest\"\n", want: []string{
		"mirror.yaml:5:15: invalid version constraint \"v1.2.0\": invalid specification \"v1.2.0\": a \"v\" prefix should not be used when specifying versions",
		"mirror.yaml:9:15: invalid version constraint \"~> 1.x\": invalid specification \"~> 1.x\": can't use wildcard for minor number; omit segments that should be unconstrained",
		"mirror.yaml:11:15: invalid version constraint \"=> 1.0\": invalid specification \"=> 1.0\": invalid constraint operator \"=>\"; did you mean \">=\"?",
		"mirror.yaml:13:15: invalid version constraint \"1.2.3.4\": invalid specification \"1.2.3.4\": too many numbered portions; only three are allowed (major, minor, patch)",
		"mirror.yaml:15:15: invalid version constraint \"latest\": missing comma after \"\"",
	}},
	{name: "bad platforms", yaml: "version: 1\nplatforms: [linux-amd64, Linux_amd64, linux_amd64_v2, \"\"]\nproviders:\n  - source: hashicorp/aws\n    versions: \"1.0.0\"\n    platforms: [darwin_arm64, _arm64]\n", want: []string{
		"mirror.yaml:2:13: invalid platform \"linux-amd64\": want OS_ARCH with exactly one underscore, e.g. linux_amd64",
		"mirror.yaml:2:26: invalid platform \"Linux_amd64\": OS and ARCH must be non-empty lower-case letters and digits, e.g. linux_amd64",
		"mirror.yaml:2:39: invalid platform \"linux_amd64_v2\": want OS_ARCH with exactly one underscore, e.g. linux_amd64",
		"mirror.yaml:2:55: invalid platform \"\": want OS_ARCH with exactly one underscore, e.g. linux_amd64",
		"mirror.yaml:6:31: invalid platform \"_arm64\": OS and ARCH must be non-empty lower-case letters and digits, e.g. linux_amd64",
	}},
	{name: "no platforms", yaml: "version: 1\nproviders:\n  - source: hashicorp/aws\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:3:5: providers[0] has no platforms: set platforms on it or a top-level platforms list",
	}},
	{name: "empty top-level platforms", yaml: "version: 1\nplatforms: []\nproviders:\n  - source: hashicorp/aws\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:4:5: providers[0] has no platforms: set platforms on it or a top-level platforms list",
	}},
	{name: "empty provider platforms", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: hashicorp/aws\n    versions: \"1.0.0\"\n    platforms: []\n", want: []string{
		"mirror.yaml:6:16: providers[0].platforms is empty; list at least one platform or remove the key to use the top-level platforms",
	}},
	{name: "template unknown variable", yaml: "version: 1\ntarget:\n  providers_repository: \"p/${namespace}/${name}\"\n  modules_repository: \"m/${namespace}/${type}\"\nplatforms: [linux_amd64]\nproviders:\n  - source: hashicorp/aws\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:3:25: target.providers_repository: invalid repository template \"p/${namespace}/${name}\": unknown variable ${name}; known: ${hostname} ${namespace} ${type}",
		"mirror.yaml:4:23: target.modules_repository: invalid repository template \"m/${namespace}/${type}\": unknown variable ${type}; known: ${hostname} ${namespace} ${name} ${system}",
	}},
	{name: "template unterminated", yaml: "version: 1\ntarget:\n  providers_repository: \"p/${namespace/${type}\"\n", want: []string{
		"mirror.yaml:3:25: target.providers_repository: invalid repository template \"p/${namespace/${type}\": unterminated \"${\"",
	}},
	{name: "template renders invalid name", yaml: "version: 1\ntarget:\n  providers_repository: \"Providers/${namespace}/${type}\"\n  modules_repository: \"m/${namespace}/${name}/${system}/\"\n", want: []string{
		"mirror.yaml:3:25: target.providers_repository: invalid OCI repository name \"Providers/hashicorp/null\" rendered from template \"Providers/${namespace}/${type}\": want lower-case letters and digits, separated by '.', '_', '__' or dashes, in components joined by '/', at most 255 characters",
		"mirror.yaml:4:23: target.modules_repository: invalid OCI repository name \"m/cloudposse/label/null/\" rendered from template \"m/${namespace}/${name}/${system}/\": want lower-case letters and digits, separated by '.', '_', '__' or dashes, in components joined by '/', at most 255 characters",
	}},
	{name: "entry renders invalid name", yaml: "version: 1\ntarget:\n  providers_repository: \"${hostname}/${namespace}/${type}\"\nplatforms: [linux_amd64]\nproviders:\n  - source: localhost:8080/hashicorp/aws\n    versions: \"1.0.0\"\nmodules:\n  - source: a/b___c/aws\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:6:5: provider localhost:8080/hashicorp/aws: invalid OCI repository name \"localhost:8080/hashicorp/aws\" rendered from template \"${hostname}/${namespace}/${type}\": want lower-case letters and digits, separated by '.', '_', '__' or dashes, in components joined by '/', at most 255 characters",
		"mirror.yaml:9:5: module registry.opentofu.org/a/b___c/aws: invalid OCI repository name \"opentofu-modules/a/b___c/aws\" rendered from template \"opentofu-modules/${namespace}/${name}/${system}\": want lower-case letters and digits, separated by '.', '_', '__' or dashes, in components joined by '/', at most 255 characters",
	}},
	{name: "duplicate provider", yaml: "version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: hashicorp/aws\n    versions: \"~> 5.0\"\n  - source: HashiCorp/AWS\n    versions: \"~> 4.0\"\n", want: []string{
		"mirror.yaml:4:5: provider registry.opentofu.org/hashicorp/aws renders repository \"opentofu-providers/hashicorp/aws\", as does provider registry.opentofu.org/hashicorp/aws at line 6, column 5; each source needs its own repository (list a source once, or change the template)",
		"mirror.yaml:6:5: provider registry.opentofu.org/hashicorp/aws renders repository \"opentofu-providers/hashicorp/aws\", as does provider registry.opentofu.org/hashicorp/aws at line 4, column 5; each source needs its own repository (list a source once, or change the template)",
	}},
	{name: "provider and module share a repository", yaml: "version: 1\ntarget:\n  providers_repository: \"mirror/${namespace}/${type}\"\n  modules_repository: \"mirror/${namespace}/${name}\"\nplatforms: [linux_amd64]\nproviders:\n  - source: hashicorp/null\n    versions: \"1.0.0\"\nmodules:\n  - source: hashicorp/null/aws\n    versions: \"1.0.0\"\n", want: []string{
		"mirror.yaml:7:5: provider registry.opentofu.org/hashicorp/null renders repository \"mirror/hashicorp/null\", as does module registry.opentofu.org/hashicorp/null/aws at line 10, column 5; each source needs its own repository (list a source once, or change the template)",
		"mirror.yaml:10:5: module registry.opentofu.org/hashicorp/null/aws renders repository \"mirror/hashicorp/null\", as does provider registry.opentofu.org/hashicorp/null at line 7, column 5; each source needs its own repository (list a source once, or change the template)",
	}},
	{name: "service url not absolute http", yaml: "version: 1\nupstream:\n  hosts:\n    registry.opentofu.org:\n      services:\n        providers.v1: /v1/providers/\n        modules.v1: ftp://mirror.example/v1/modules/\n    example.com:\n      services:\n        providers.v1: \"https:///v1/providers/\"\n        modules.v1:\n", want: []string{
		"mirror.yaml:6:23: upstream.hosts.registry.opentofu.org.services.providers.v1 must be an absolute http(s) URL, not \"/v1/providers/\"",
		"mirror.yaml:7:21: upstream.hosts.registry.opentofu.org.services.modules.v1 must be an absolute http(s) URL, not \"ftp://mirror.example/v1/modules/\"",
		"mirror.yaml:10:23: upstream.hosts.example.com.services.providers.v1 must be an absolute http(s) URL, not \"https:///v1/providers/\"",
		"mirror.yaml:11:9: upstream.hosts.example.com.services.modules.v1 needs a URL",
	}},
	{name: "bad host key", yaml: "version: 1\nupstream:\n  hosts:\n    \"https://registry.opentofu.org\": {}\n", want: []string{
		"mirror.yaml:4:5: upstream.hosts: invalid hostname \"https://registry.opentofu.org\": want host[:port], not a URL or path",
	}},
	{name: "bad registry", yaml: "version: 1\ntarget:\n  registry: https://registry.example/\n", want: []string{
		"mirror.yaml:3:13: target.registry is host[:port], not a URL: write \"registry.example\" (and insecure: true for plain HTTP)",
	}},
	{name: "registry with path", yaml: "version: 1\ntarget:\n  registry: registry.example/team\n", want: []string{
		"mirror.yaml:3:13: target.registry is host[:port] only; put path prefixes into providers_repository and modules_repository",
	}},
	{name: "registry empty layout", yaml: "version: 1\ntarget:\n  registry: \"oci-layout:\"\n", want: []string{
		"mirror.yaml:3:13: target.registry \"oci-layout:\" names no directory; write e.g. \"oci-layout:./mirror\"",
	}},
	{name: "registry bad host", yaml: "version: 1\ntarget:\n  registry: \"bad host\"\n", want: []string{
		"mirror.yaml:3:13: target.registry: invalid hostname \"bad host\": want a DNS name (letters, digits, dashes and dots, no leading or trailing dash) with an optional :port (or write oci-layout:PATH for a local directory)",
	}},
}
