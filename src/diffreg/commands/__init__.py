"""CLI subcommands. Each module here defines NAME, HELP, add_arguments(parser) and run(args);
`diffreg.cli` discovers them, so adding a command never edits the CLI itself."""
