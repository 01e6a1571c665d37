# Logs (ELK) and load tests (Locust): docs/observability.md, docs/loadtest.md.
LOADTEST_USERS ?= 20
LOADTEST_SPAWN_RATE ?= 5
LOADTEST_RUN_TIME ?= 60s
LOADTEST_OUT ?= reports/loadtest
# Empty: start inference + gateway locally. A URL: test that gateway (e.g. a cluster's).
LOADTEST_HOST ?=

.PHONY: loadtest loadtest-hpa elk-check kibana-objects

loadtest: install ## Headless Locust run against a local stack; CSV + HTML in reports/loadtest
	$(PY) loadtest/run_local.py --users $(LOADTEST_USERS) --spawn-rate $(LOADTEST_SPAWN_RATE) \
		--run-time $(LOADTEST_RUN_TIME) --out $(LOADTEST_OUT) \
		$(if $(LOADTEST_HOST),--host $(LOADTEST_HOST))

loadtest-hpa: install ## Step load for the HPA against LOADTEST_HOST (LOADTEST_STEP_* settings)
	@test -n "$(LOADTEST_HOST)" || { echo "set LOADTEST_HOST to the gateway's URL" >&2; exit 1; }
	$(PY) loadtest/run_local.py --shape --host $(LOADTEST_HOST) --out $(LOADTEST_OUT)

elk-check: install ## ELK checks: configs, templates, dashboards, real service logs vs ECS
	$(UV) run --frozen pytest elk/tests -p no:cacheprovider

kibana-objects: install ## Rebuild elk/kibana/saved_objects.ndjson from its builder
	$(PY) elk/kibana/build_saved_objects.py
