"""Running the backend on a laptop: no AWS account, no Alipay contract."""
