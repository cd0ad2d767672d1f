"""The experiments: each a subpackage with one command that reruns it and writes its report
folder under `experiments/<name>/` in the repository."""
