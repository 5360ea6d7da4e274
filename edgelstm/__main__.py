"""`python -m edgelstm`: the same CLI as the `edgelstm` command."""

from edgelstm.cli.app import main

if __name__ == "__main__":
    main()
