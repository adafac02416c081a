"""How measurements are made: linear operators (A, Aᴴ, A†), noise models, nonlinear physics.

Import operators from here: ``from selfrecon.physics import Inpainting, Physics, GaussianNoise``.
"""

from selfrecon.physics.base import (
    Adjoint,
    Composition,
    LinearOperator,
    MaskedProjection,
    check_device,
    check_image,
    conjugate_gradient,
    inner,
)
from selfrecon.physics.blur import Blur, Downsampling, gaussian_kernel, motion_kernel
from selfrecon.physics.complex import complex_channels, magnitude, to_complex, to_real
from selfrecon.physics.compressed_sensing import CompressedSensing, MatrixOperator
from selfrecon.physics.inpainting import Denoising, Inpainting
from selfrecon.physics.mri import MRI, MultiCoilMRI, birdcage_maps, fft2c, ifft2c, mri_mask
from selfrecon.physics.noise import (
    BinomialNoise,
    GammaNoise,
    GaussianNoise,
    NoiseModel,
    PoissonGaussianNoise,
    PoissonNoise,
    build_noise,
)
from selfrecon.physics.noise_estimation import NoiseEstimate, estimate_noise
from selfrecon.physics.physics import (
    OPERATORS,
    Physics,
    build_operator,
    build_physics,
    register_operator,
    register_physics,
)
from selfrecon.physics.spc import SinglePixelCamera, fwht
from selfrecon.physics.tomography import LowDoseCT, Tomography

__all__ = [
    "check_device",
    "fwht",
    "SinglePixelCamera",
    "mri_mask",
    "ifft2c",
    "fft2c",
    "birdcage_maps",
    "MultiCoilMRI",
    "MRI",
    "motion_kernel",
    "gaussian_kernel",
    "Downsampling",
    "Blur",
    "LowDoseCT",
    "Tomography",
    "Adjoint",
    "Composition",
    "CompressedSensing",
    "Denoising",
    "GaussianNoise",
    "Inpainting",
    "LinearOperator",
    "MaskedProjection",
    "MatrixOperator",
    "NoiseModel",
    "OPERATORS",
    "Physics",
    "PoissonGaussianNoise",
    "PoissonNoise",
    "build_noise",
    "BinomialNoise",
    "GammaNoise",
    "NoiseEstimate",
    "estimate_noise",
    "build_operator",
    "build_physics",
    "check_image",
    "complex_channels",
    "conjugate_gradient",
    "inner",
    "magnitude",
    "register_operator",
    "register_physics",
    "to_complex",
    "to_real",
]
