"""`edgelstm run`: the pipeline config, its cache, the stages and the report."""
