// Package archtest holds no code: its tests check the module's
// architecture from its source, as STYLE.md §20 asks. layers_test.go
// fails when an import runs up the layers of DESIGN.md §6 (the table there
// maps each of today's packages to its layer); banned_test.go fails on
// patterns the project bans, such as context.Background() where a context
// is in scope. A new package must be added to the layer table: the test
// names it.
package archtest
