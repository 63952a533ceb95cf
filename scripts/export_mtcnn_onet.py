"""Export MTCNN's O-Net with the weights the facenet-pytorch wheel ships (data/onet.pt, MIT) to ONNX.

Run once, offline, with the wheel unpacked:
    python scripts/export_mtcnn_onet.py PATH/onet.pt tests/data/third_party/mtcnn_onet.onnx
Outputs: box [N,4] (a box regression), landmarks [N,10], prob [N,2] (face / not face).
The module below is facenet-pytorch's ONet (models/mtcnn.py) without its weight loading.
"""

from __future__ import annotations

import sys

import torch
from torch import nn


class ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def main(weights: str, dest: str) -> None:
    net = ONet()
    net.load_state_dict(torch.load(weights))
    net.eval()
    batch = {0: "N"}
    torch.onnx.export(
        net,
        (torch.zeros(1, 3, 48, 48),),
        dest,
        input_names=["image"],
        output_names=["box", "landmarks", "prob"],
        dynamic_axes={"image": batch, "box": batch, "landmarks": batch, "prob": batch},
        dynamo=False,  # the legacy exporter: a plain opset-17 graph like the files vendors publish
        opset_version=17,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
