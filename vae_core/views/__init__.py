"""The views: figures from plain numbers, looking into a trained model, and the lessons."""
