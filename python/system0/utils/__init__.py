"""system0.utils: framework helpers (torch, jax, distributed) and numeric utilities.

The names below are the part's surface (see ``system0.facade`` for how they load); torch and
jax are imported only by the helpers that need them.
"""

from typing import TYPE_CHECKING

from system0.facade import lazy_exports

if TYPE_CHECKING:
    from system0.utils.distributed_utils import (
        DistInfo as DistInfo,
    )
    from system0.utils.distributed_utils import (
        init_process_group as init_process_group,
    )
    from system0.utils.jax_utils import (
        bucket_for as bucket_for,
    )
    from system0.utils.jax_utils import (
        require_jax as require_jax,
    )
    from system0.utils.performance_utils import (
        checksum as checksum,
    )
    from system0.utils.performance_utils import (
        dequantize_int8 as dequantize_int8,
    )
    from system0.utils.performance_utils import (
        normalize as normalize,
    )
    from system0.utils.performance_utils import (
        quantize_int8 as quantize_int8,
    )
    from system0.utils.torch_utils import (
        CUDAGraphRunner as CUDAGraphRunner,
    )
    from system0.utils.torch_utils import (
        PinnedBufferPool as PinnedBufferPool,
    )
    from system0.utils.torch_utils import (
        require_torch as require_torch,
    )

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "system0.utils.distributed_utils": (
            "DistInfo",
            "init_process_group",
        ),
        "system0.utils.jax_utils": (
            "bucket_for",
            "require_jax",
        ),
        "system0.utils.performance_utils": (
            "checksum",
            "dequantize_int8",
            "normalize",
            "quantize_int8",
        ),
        "system0.utils.torch_utils": (
            "CUDAGraphRunner",
            "PinnedBufferPool",
            "require_torch",
        ),
    },
)
