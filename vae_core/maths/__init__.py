"""The maths of a VAE: models, objectives, schedules, augmentation, the measures the lessons use, and a run's
final score on the test split."""
