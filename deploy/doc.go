// Package deploy holds no code: it is the Go module whose tests check the
// deployable examples (deploy/kubernetes, deploy/systemd, the Dockerfile)
// against the real Kubernetes API types and the flags the binary accepts.
// It is a module of its own so that k8s.io/api never becomes a dependency
// of the tool.
package deploy
