"""The HTTP service: a FastAPI app over a trained textcnn model directory."""
