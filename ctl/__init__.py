"""regsyncctl: thin gRPC client for people and scripts.

Layers, bottom up:

    output, views, progress   pure rendering: protobuf replies -> text (tables, status lines)
    specs                     pure: command-line values -> RegistrySpec / TaskSpec
    client                    the channel, the API token, gRPC status -> CtlError + exit code
    follow                    Watch an execution to its end (reader thread, idle polling)
    commands/*                one module per area; each handler makes a call or two and prints
    parser, main              the argparse tree (exit codes in its epilog) and the entry point

`main(argv, stdout=, stderr=, stdin=, environ=)` runs the CLI in-process for tests.
"""
