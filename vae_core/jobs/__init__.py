"""Running jobs: a run hosted on a thread or process (job), its state as pages see it (state), where runs
train (backends, process), which browser session owns which (sessions, series), and their parts."""
