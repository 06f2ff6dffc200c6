"""From a run to answers: ``InversionModel`` (generate, invert, reconstruct), optimisation and hybrid inversion,
evaluation, and wrapping a generator of your own."""
