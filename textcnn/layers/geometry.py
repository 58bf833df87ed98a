"""Output sizes and padding of sliding windows (convolution and pooling), checked."""

from __future__ import annotations


def effective_kernel(kernel_size: int, dilation: int = 1) -> int:
    """Span of a dilated ("à trous") kernel: a 3-tap kernel with dilation 2 spans 5."""
    return dilation * (kernel_size - 1) + 1


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding on each side that keeps the size at stride 1 ("same" padding)."""
    span = effective_kernel(kernel_size, dilation)
    if span % 2 == 0:
        raise ValueError(
            f"'same' padding needs an odd kernel span, got {span} "
            f"(kernel {kernel_size}, dilation {dilation}); use an odd kernel size"
        )
    return (span - 1) // 2


def output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    allow_crop: bool = False,
) -> int:
    """Number of window positions along one axis.

    PyTorch floors ``(size + 2p - span) / stride + 1`` and silently ignores the
    last rows that no window reaches. Here that crop is an error unless
    ``allow_crop`` is set, so it is never a surprise.
    """
    span = effective_kernel(kernel_size, dilation)
    reach = size + 2 * padding - span
    if reach < 0:
        raise ValueError(
            f"window of span {span} does not fit an input of size {size} with padding {padding}"
        )
    left_over = reach % stride
    if left_over and not allow_crop:
        raise ValueError(
            f"input size {size} with kernel {kernel_size}, stride {stride}, padding {padding} "
            f"has no whole number of positions ({reach / stride + 1:.2f}); the last "
            f"{left_over} row(s) would be cropped. Change the padding or stride, "
            "or pass allow_crop=True to accept the crop"
        )
    return reach // stride + 1
