# Kubernetes: the Helm chart (helm/brainscan) and the Ansible role that deploys it (ansible/).
# See docs/kubernetes.md. Nothing here needs a cluster except deploy and rollback.
# Target names avoid digits: the root `make help` lists names matching [a-z-]+.
DEPLOY_ENV ?= local
VAULT_PASSWORD_FILE ?= $(HOME)/.config/brainscan/vault-$(DEPLOY_ENV).pass
KUBE_CONTEXT ?=
ANSIBLE_RUN := cd ansible && PATH="$(CURDIR)/.venv/bin:$$PATH"

.PHONY: helm-check ansible-check kube-check ansible-lint vault-write deploy-values deploy rollback

helm-check: install ## Chart: render the values matrix with Helm's engine, validate for k8s 1.29-1.34, lint, schema
	$(UV) run --frozen pytest helm/tests -p no:cacheprovider -q

ansible-check: install ## Ansible: ansible-lint (production), syntax, test vault, role-written values rendered
	$(UV) run --frozen pytest ansible/tests -p no:cacheprovider -q

kube-check: helm-check ansible-check ## Every offline check of the chart and the role

ansible-lint: install ## ansible-lint (production profile) and yamllint on ansible/
	$(ANSIBLE_RUN) ansible-lint --offline && yamllint --strict .

vault-write: install ## Write the DEPLOY_ENV vault: kubeconfig of KUBE_CONTEXT + BRAINSCAN_* secrets, encrypted
	$(PY) ansible/scripts/write_vault.py $(DEPLOY_ENV) --password-file $(VAULT_PASSWORD_FILE) \
		$(if $(KUBE_CONTEXT),--context $(KUBE_CONTEXT))

deploy-values: install ## Write the Helm values of DEPLOY_ENV (role, --tags values) into ansible/.work/, no cluster
	$(ANSIBLE_RUN) ansible-playbook -i inventories/$(DEPLOY_ENV) playbooks/deploy.yml \
		--vault-id $(DEPLOY_ENV)@$(VAULT_PASSWORD_FILE) --tags values

deploy: install ## Deploy or upgrade DEPLOY_ENV (helm + cluster); IMAGE_TAG=... rolls a new image; BOOTSTRAP=1 first time
	$(ANSIBLE_RUN) ansible-playbook -i inventories/$(DEPLOY_ENV) playbooks/deploy.yml \
		--vault-id $(DEPLOY_ENV)@$(VAULT_PASSWORD_FILE) \
		$(if $(IMAGE_TAG),-e brainscan_deploy_image_tag=$(IMAGE_TAG)) \
		$(if $(BOOTSTRAP),-e brainscan_deploy_bootstrap=true)

rollback: install ## Roll DEPLOY_ENV back to the previous Helm revision (REVISION=n for another)
	$(ANSIBLE_RUN) ansible-playbook -i inventories/$(DEPLOY_ENV) playbooks/rollback.yml \
		--vault-id $(DEPLOY_ENV)@$(VAULT_PASSWORD_FILE) \
		$(if $(REVISION),-e brainscan_deploy_rollback_revision=$(REVISION))
