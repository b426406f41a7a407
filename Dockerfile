# The environment server, as the README installs it.
# Not built on the development machine (it has no Docker engine).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md openenv.yaml ./
COPY src ./src
RUN pip install --no-cache-dir -e ".[fast,server]"
EXPOSE 8000
# Binding to all interfaces is an explicit choice here: the container is the boundary.
CMD ["alert-triage", "serve", "--host", "0.0.0.0", "--port", "8000"]
