from torch import nn


def hidden_block(n_in, n_out):
    return nn.Sequential(nn.Linear(n_in, n_out), nn.ReLU())
