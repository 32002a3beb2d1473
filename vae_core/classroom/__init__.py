"""The classroom: who a student is, what a run card says, the class a teacher runs, and what a student may set."""
