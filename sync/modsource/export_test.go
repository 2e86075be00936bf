package modsource

// GitEnvForTest exposes the environment git commands get.
func GitEnvForTest(f *Fetcher) []string { return f.gitEnv() }
