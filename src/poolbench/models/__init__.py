from poolbench.models.convnet import ConvNet, build_convnet

__all__ = ["ConvNet", "build_convnet"]
