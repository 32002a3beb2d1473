"""The maths of a VAE: models, objectives, schedules, augmentation and the measures the lessons use."""
