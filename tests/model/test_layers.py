import torch

from mia.model.norm import LayerNorm, RMSNorm
from mia.model.rope import apply_rope, rope_cache


def test_rmsnorm_matches_torch():
    torch.manual_seed(0)
    ours = RMSNorm(48, eps=1e-5)
    ours.weight.data.normal_()
    ref = torch.nn.RMSNorm(48, eps=1e-5)
    ref.weight.data.copy_(ours.weight.data)
    x = torch.randn(3, 7, 48)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=1e-5)


def test_norms_keep_the_input_dtype():
    x = torch.randn(2, 5, 16, dtype=torch.bfloat16)
    assert RMSNorm(16)(x).dtype == torch.bfloat16
    assert LayerNorm(16)(x).dtype == torch.bfloat16


def test_rope_scores_depend_only_on_distance():
    torch.manual_seed(0)
    D = 16
    cos, sin = rope_cache(64, D, theta=10000.0)
    q = torch.randn(1, 1, 1, D)
    k = torch.randn(1, 1, 1, D)

    def score(i: int, j: int) -> torch.Tensor:
        qi = apply_rope(q, cos[i : i + 1], sin[i : i + 1])
        kj = apply_rope(k, cos[j : j + 1], sin[j : j + 1])
        return (qi * kj).sum()

    for offset in (0, 5, 40):
        torch.testing.assert_close(score(3 + offset, 1 + offset), score(3, 1), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(score(3, 1), score(9, 1))


def test_rope_is_a_rotation():
    cos, sin = rope_cache(32, 8, theta=10000.0)
    x = torch.randn(2, 3, 32, 8)
    torch.testing.assert_close(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1))
