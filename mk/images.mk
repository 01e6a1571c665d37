# Container images, the compose stack and its end-to-end test (docs/containers.md).
# podman builds and runs everything here; no Docker engine is needed.
IMAGE_COMPONENTS := gateway inference model-sync mlflow training
E2E_COMPONENTS := gateway inference model-sync mlflow
PODMAN_PACKAGES := podman runc debootstrap catatonit
export CONTAINERS_CONF ?= $(CURDIR)/infra/images/containers.conf
export BUILDAH_ISOLATION ?= chroot

.PHONY: images service-images test-images training-image-check mlflow-requirements podman-check

podman-check:
	@missing=""; for tool in podman runc debootstrap; do \
		command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "missing:$$missing -- install with: apt-get install -y $(PODMAN_PACKAGES)" >&2; exit 1; fi

images: podman-check ## Build every image with podman (local debootstrap base; IMAGE_TAG, BASE_IMAGE)
	bash infra/images/build.sh $(IMAGE_COMPONENTS)

service-images: podman-check ## Build the gateway, inference, model-sync and MLflow images
	bash infra/images/build.sh $(E2E_COMPONENTS)

test-images: install service-images ## Build images, run docker-compose.yml in podman: register, promote, predict
	$(PY) -m pytest infra/e2e/test_stack_images.py -p no:cacheprovider -o testpaths= --durations=5

training-image-check: install podman-check ## Build the training image, run dvc repro (tiny profile) in it
	bash infra/images/build.sh mlflow training
	$(PY) -m pytest infra/e2e/test_training_image.py -p no:cacheprovider -o testpaths= --durations=5

mlflow-requirements: ## Re-lock infra/mlflow/requirements.txt (pin mlflow to uv.lock's version first)
	cd infra/mlflow && $(UV) pip compile requirements.in --python-version 3.11 --universal \
		--generate-hashes --custom-compile-command "make mlflow-requirements" -o requirements.txt
