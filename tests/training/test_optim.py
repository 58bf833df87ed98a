import torch

from textcnn.training.optim import LazyAdadelta


def test_lazy_adadelta_follows_dense_adadelta_on_sparse_rows():
    torch.manual_seed(0)
    lazy_emb = torch.nn.Embedding(40, 3, sparse=True, padding_idx=0)
    dense_emb = torch.nn.Embedding(40, 3, padding_idx=0)
    dense_emb.weight.data.copy_(lazy_emb.weight.data)
    head_a, head_b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    head_b.load_state_dict(head_a.state_dict())
    lazy = LazyAdadelta([*lazy_emb.parameters(), *head_a.parameters()], rho=0.9)
    dense = torch.optim.Adadelta(
        [*dense_emb.parameters(), *head_b.parameters()], lr=1.0, rho=0.9, eps=1e-6
    )
    for step in range(40):
        # some rows go unused for many steps, so their skipped decays matter
        ids = torch.randint(0, 40 if step % 4 == 0 else 8, (5, 3))
        for emb, head, opt in ((lazy_emb, head_a, lazy), (dense_emb, head_b, dense)):
            opt.zero_grad()
            head(emb(ids).mean(1)).logsumexp(-1).sum().backward()
            opt.step()
    torch.testing.assert_close(lazy_emb.weight, dense_emb.weight, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(head_a.weight, head_b.weight, atol=1e-6, rtol=1e-5)
    assert lazy_emb.weight[0].eq(0).all()
