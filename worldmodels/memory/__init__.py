"""Memory (M): the MDN-RNN that predicts the next latent from the current latent and action."""
