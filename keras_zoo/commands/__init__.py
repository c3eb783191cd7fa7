"""The `zoo` subcommands beyond list/show/run, one module each with `add_arguments(parser)` and
`main(args) -> int`; importing one imports no TensorFlow."""
