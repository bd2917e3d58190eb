"""The network: pooling.py (downsampling), heads.py, shapes.py (arithmetic), convnet.py."""
