"""Config schema, planning the layer DAG, running it on Dask, publishing outputs, and the command line."""
