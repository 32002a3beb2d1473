"""VAE Lab core: data, models, objectives, training and exploration, with no UI."""
