"""The model: feature spec, preprocessing, Keras model, trainer and signatures."""
