"""llama2.c formats and a NumPy reference of its forward pass, tokenizer and sampler."""
