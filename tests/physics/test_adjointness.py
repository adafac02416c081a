"""Adjointness ⟨A x, y⟩ = ⟨x, Aᴴ y⟩ and A A† A x = A x for every non-CT operator (float64)."""

from __future__ import annotations

import pytest
import torch

from selfrecon.physics import (
    MRI,
    Blur,
    CompressedSensing,
    Denoising,
    Downsampling,
    Inpainting,
    MultiCoilMRI,
    SinglePixelCamera,
    birdcage_maps,
    gaussian_kernel,
    motion_kernel,
    mri_mask,
)

B, C, N = 2, 3, 8


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _per_sample_mri_mask() -> torch.Tensor:
    return torch.stack([mri_mask((N, N), 2, 0.25, generator=_g(s)) for s in (1, 2)])  # (B, H, W)


# name -> (operator factory, input shape, complex input?)
OPERATORS = {
    "denoising": (lambda: Denoising(), (B, C, N, N), False),
    "inpainting": (
        lambda: Inpainting(rate=0.6, img_shape=(N, N), generator=_g()),
        (B, C, N, N),
        False,
    ),
    "inpainting_per_sample": (
        lambda: Inpainting(mask=(torch.rand(B, 1, N, N, generator=_g()) < 0.5).float()),
        (B, C, N, N),
        False,
    ),
    "inpainting_per_channel": (
        lambda: Inpainting(mask=(torch.rand(C, N, N, generator=_g()) < 0.5).float()),
        (B, C, N, N),
        False,
    ),
    "cs": (lambda: CompressedSensing(20, (1, N, N), generator=_g()), (B, 1, N, N), False),
    "cs_overdetermined": (
        lambda: CompressedSensing(40, (1, 4, 4), generator=_g()),
        (B, 1, 4, 4),
        False,
    ),
    "mri": (lambda: MRI(mri_mask((N, N), 2, 0.25, generator=_g())), (B, C, N, N), True),
    "mri_per_sample": (lambda: MRI(_per_sample_mri_mask()), (B, 1, N, N), True),
    "multicoil_mri": (
        lambda: MultiCoilMRI(mri_mask((N, N), 2, 0.25, generator=_g()), birdcage_maps(4, (N, N))),
        (B, 1, N, N),
        True,
    ),
    "multicoil_mri_per_sample": (
        lambda: MultiCoilMRI(
            _per_sample_mri_mask(),
            torch.stack([birdcage_maps(3, (N, N)), birdcage_maps(3, (N, N), 2.0)]),
        ),
        (B, 1, N, N),
        True,
    ),
    "spc_hadamard": (lambda: SinglePixelCamera(20, (N, N), kind="hadamard"), (B, C, N, N), False),
    "spc_bernoulli": (
        lambda: SinglePixelCamera(20, (N, N), kind="bernoulli", generator=_g()),
        (B, C, N, N),
        False,
    ),
    "blur_gaussian": (lambda: Blur(gaussian_kernel(1.0)), (B, C, N, N), False),
    "blur_per_channel": (
        lambda: Blur(torch.stack([motion_kernel(3, a, size=5) for a in (0, 45, 100)]), rcond=1e-9),
        (B, C, N, N),
        False,
    ),
    "blur_per_sample_even": (
        lambda: Blur(torch.rand(B, 1, 4, 2, generator=_g()), rcond=1e-9),
        (B, C, N, N),
        False,
    ),
    "downsampling_box": (lambda: Downsampling(2), (B, C, N, N), False),
    "downsampling_gaussian": (lambda: Downsampling(2, "gaussian"), (B, C, N, N), False),
    "downsampling_4": (
        lambda: Downsampling(4, torch.rand(5, 5, generator=_g())),
        (B, C, N, N),
        False,
    ),
    "composition_inpaint_blur": (
        lambda: Inpainting(rate=0.5, img_shape=(N, N), generator=_g()) @ Blur(gaussian_kernel(0.8)),
        (B, C, N, N),
        False,
    ),
    "composition_cs_downsampling": (
        lambda: CompressedSensing(10, (1, N // 2, N // 2), generator=_g()) @ Downsampling(2),
        (B, 1, N, N),
        False,
    ),
    "composition_mri_inpainting": (
        lambda: (
            MRI(mri_mask((N, N), 2, 0.25, generator=_g()))
            @ Inpainting(rate=0.7, img_shape=(N, N), generator=_g(3))
        ),
        (B, 1, N, N),
        True,
    ),
}

# operators whose pinv is a closed form (not CG), and A A† A = A holds to float precision
CLOSED_FORM = [
    "denoising",
    "inpainting",
    "inpainting_per_sample",
    "inpainting_per_channel",
    "cs",
    "cs_overdetermined",
    "mri",
    "mri_per_sample",
    "spc_hadamard",
    "spc_bernoulli",
    "blur_per_channel",
    "blur_per_sample_even",
    "downsampling_box",
    "downsampling_gaussian",
    "downsampling_4",
]


def _randn(shape, is_complex: bool, gen: torch.Generator) -> torch.Tensor:
    dtype = torch.complex128 if is_complex else torch.float64
    return torch.randn(shape, dtype=dtype, generator=gen)


def _cinner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample complex inner product Σ conj(a) b."""
    a, b = torch.broadcast_tensors(a.to(torch.complex128), b.to(torch.complex128))
    return (a.conj() * b).reshape(a.shape[0], -1).sum(1)


def _build(name):
    factory, shape, is_complex = OPERATORS[name]
    return factory().double(), shape, is_complex


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_adjointness(name, rng):
    A, shape, is_complex = _build(name)
    x = _randn(shape, is_complex, rng)
    Ax = A(x)
    y = _randn(Ax.shape, Ax.is_complex(), rng)
    lhs, rhs = _cinner(Ax, y), _cinner(x, A.adjoint(y))
    assert ((lhs - rhs).abs() / lhs.abs()).max() <= 1e-5
    # and the adjoint as an operator: ⟨Aᴴ y, x⟩ = ⟨y, A x⟩, with (Aᴴ)ᴴ = A
    AH = A.H
    assert AH.H is A
    lhs2, rhs2 = _cinner(AH(y), x), _cinner(y, AH.adjoint(x))
    assert ((lhs2 - rhs2).abs() / lhs2.abs()).max() <= 1e-5


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_pinv_is_generalised_inverse(name, rng):
    """A A† A x = A x (Penrose condition 1) and A† A A† y = A† y (condition 2)."""
    A, shape, is_complex = _build(name)
    x = _randn(shape, is_complex, rng)
    Ax = A(x)
    assert torch.allclose(A(A.pinv(Ax)), Ax, rtol=0, atol=1e-9 * Ax.abs().max())
    y = _randn(Ax.shape, Ax.is_complex(), rng)
    p = A.pinv(y)
    assert torch.allclose(A.pinv(A(p)), p, rtol=0, atol=1e-9 * p.abs().max())


@pytest.mark.parametrize("name", ["composition_inpaint_blur", "multicoil_mri"])
def test_cg_pinv_is_generalised_inverse(name, rng):
    """Operators without a closed form fall back to CG on the normal equations."""
    A, shape, is_complex = _build(name)
    x = _randn(shape, is_complex, rng)
    Ax = A(x)
    rec = A(A.pinv(Ax, tol=1e-12, max_iter=500))
    assert ((rec - Ax).norm() / Ax.norm()) < 1e-6


def test_composition_applies_inner_first(rng):
    inp = Inpainting(rate=0.5, img_shape=(N, N), generator=_g())
    blur = Blur(gaussian_kernel(1.0))
    A = inp @ blur
    x = torch.randn(B, C, N, N, generator=rng)
    assert torch.equal(A(x), inp(blur(x)))
    assert torch.equal(A.adjoint(x), blur.adjoint(inp.adjoint(x)))
    assert A.measured_mask is inp.measured_mask
    assert (MRI(torch.ones(N, N)) @ inp).complex_input
