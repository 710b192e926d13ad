"""V's strided convolutions, computed with the CPU kernels that are fast on every x86 machine.

Same layers, same parameters, same function as Keras' `Conv2D` / `Conv2DTranspose` (stride 2,
valid padding), but TensorFlow's CPU kernel for the transposed direction (`Conv2DBackpropInput`)
is pathologically slow without AVX-512: 1.4 s per batch of 100 for the decoder's first layer on a
1x1 input, and 3-15x slower than a forward convolution of the same size elsewhere (measured on an
AMD EPYC with AVX2, `benchmarks/bench_vae_layers.py`).  So every transposed convolution here,
in the decoder and in the encoder's backward pass, is written with forward ops only:

* on a 1x1 input a transposed convolution is a matrix product (each output pixel is a weighted
  sum of the input channels), so it is one;
* otherwise it is split by output phase: the 4 interleaved sub-grids of a stride-2 output are each
  an ordinary stride-1 convolution of the input with a sub-kernel, computed as one convolution
  with 4x the output channels and interleaved by `depth_to_space`.

Kernels keep Keras' layouts and attribute names, so weights and checkpoints are interchangeable
with the stock layers (`vae.reference_vae` builds the stock network, for tests and benchmarks).
"""

from __future__ import annotations

import keras
import tensorflow as tf

STRIDE = 2


def _phase_kernel(kernel: tf.Tensor) -> tf.Tensor:
    """(k, k, out, in) transposed-conv kernel -> (A, A, in, 4 * out) stride-1 kernel, A = ceil(k / 2).

    Output pixel (2m + r, 2n + s) is the sum over a, b < A of input (m - a, n - b) times kernel
    tap (2a + r, 2b + s); as a valid convolution of the input padded by A - 1, tap a sits at A - 1 - a.
    """
    size, _, out_channels, in_channels = kernel.shape
    taps = (size + 1) // 2
    padded = tf.pad(kernel, [[0, 2 * taps - size], [0, 2 * taps - size], [0, 0], [0, 0]])
    phased = tf.reshape(padded, (taps, STRIDE, taps, STRIDE, out_channels, in_channels))[::-1, :, ::-1]
    # (a, r, b, s, out, in) -> (a, b, in, r, s, out): depth_to_space reads channels as (r, s, out).
    return tf.reshape(tf.transpose(phased, (0, 2, 5, 1, 3, 4)), (taps, taps, in_channels, 4 * out_channels))


def _fit(images: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Crop or zero-pad at the bottom/right to exactly (height, width)."""
    images = images[:, :height, :width, :]
    pad_rows, pad_cols = height - images.shape[1], width - images.shape[2]
    if pad_rows or pad_cols:
        images = tf.pad(images, [[0, 0], [0, pad_rows], [0, pad_cols], [0, 0]])
    return images


def _transposed_forward(inputs: tf.Tensor, kernel: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Stride-2 valid transposed convolution to (height, width), from forward ops only."""
    size, _, out_channels, in_channels = kernel.shape
    if inputs.shape[1] == 1 and inputs.shape[2] == 1:
        # kernel @ inputs^T: TensorFlow's CPU matmul is 3x slower with the big operand transposed.
        flat = tf.transpose(tf.matmul(tf.reshape(kernel, (-1, in_channels)), tf.reshape(inputs, (-1, in_channels)),
                                      transpose_b=True))
        return _fit(tf.reshape(flat, (-1, size, size, out_channels)), height, width)
    taps = (size + 1) // 2
    padded = tf.pad(inputs, [[0, 0], [taps - 1, taps - 1], [taps - 1, taps - 1], [0, 0]])
    phases = tf.nn.conv2d(padded, _phase_kernel(kernel), 1, "VALID")
    return _fit(tf.nn.depth_to_space(phases, STRIDE), height, width)


def _filter_gradient(inputs: tf.Tensor, output_gradient: tf.Tensor, size: int) -> tf.Tensor:
    """Gradient of a stride-2 valid convolution's (size, size, in, out) kernel, as a forward convolution:
    the batch becomes the channels summed over, the output gradient the (dilated) kernel.  Faster than
    `Conv2DBackpropFilter` for every layer of V on the CPUs measured."""
    span = STRIDE * (output_gradient.shape[1] - 1) + size, STRIDE * (output_gradient.shape[2] - 1) + size
    batch_as_channels = tf.transpose(inputs[:, :span[0], :span[1], :], (3, 1, 2, 0))
    gradient_as_kernel = tf.transpose(output_gradient, (1, 2, 0, 3))
    kernel_gradient = tf.nn.conv2d(batch_as_channels, gradient_as_kernel, 1, "VALID", dilations=STRIDE)
    return tf.transpose(kernel_gradient, (1, 2, 0, 3))


def conv2d(inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """`tf.nn.conv2d(inputs, kernel, 2, "VALID")` whose input gradient avoids Conv2DBackpropInput."""

    @tf.custom_gradient
    def forward(inputs, kernel):
        def gradient(output_gradient):
            height, width = inputs.shape[1], inputs.shape[2]
            input_gradient = _transposed_forward(output_gradient, kernel, height, width)
            return input_gradient, _filter_gradient(inputs, output_gradient, kernel.shape[0])

        return tf.nn.conv2d(inputs, kernel, STRIDE, "VALID"), gradient

    return forward(inputs, tf.convert_to_tensor(kernel))


def conv2d_transpose(inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """Keras' stride-2 valid `Conv2DTranspose` op (kernel (k, k, out, in)), from forward ops only."""
    size = kernel.shape[0]
    height, width = STRIDE * (inputs.shape[1] - 1) + size, STRIDE * (inputs.shape[2] - 1) + size

    @tf.custom_gradient
    def forward(inputs, kernel):
        def gradient(output_gradient):
            input_gradient = tf.nn.conv2d(output_gradient, kernel, STRIDE, "VALID")
            return input_gradient, _filter_gradient(output_gradient, inputs, kernel.shape[0])

        return _transposed_forward(inputs, kernel, height, width), gradient

    return forward(inputs, tf.convert_to_tensor(kernel))


class FastConv2D(keras.layers.Conv2D):
    """`Conv2D(filters, kernel, strides=2)` (valid padding) with the fast input gradient."""

    def __init__(self, filters: int, kernel_size: int, **kwargs):
        super().__init__(filters, kernel_size, strides=STRIDE, padding="valid", **kwargs)

    def convolution_op(self, inputs, kernel):
        return conv2d(inputs, kernel)


class FastConv2DTranspose(keras.layers.Conv2DTranspose):
    """`Conv2DTranspose(filters, kernel, strides=2)` (valid padding) from forward ops only."""

    def __init__(self, filters: int, kernel_size: int, **kwargs):
        super().__init__(filters, kernel_size, strides=STRIDE, padding="valid", **kwargs)

    def call(self, inputs):
        outputs = conv2d_transpose(inputs, self.kernel)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs
