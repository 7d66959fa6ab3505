"""Models: the ML-RQ residual-quantized VAE, the 2D prior and the generative transformers."""
