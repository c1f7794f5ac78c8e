# Docker image: build it and test it for real (docker/test.sh: needs root and podman or docker;
# makes a local base image when no registry is reachable). Not part of `make check`.
.PHONY: docker-test
docker-test:
	$(top_srcdir)/docker/test.sh

EXTRA_DIST += .dockerignore docker/Dockerfile docker/README.md docker/compose.yaml \
	docker/docker.mk docker/healthcheck.sh docker/runtime-deps.sh docker/test.sh \
	docker/example/Dockerfile docker/example/quantserve.json
