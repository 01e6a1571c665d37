# Logs (ELK), metrics and alerts (Prometheus), load tests (Locust): docs/observability.md,
# docs/loadtest.md.
LOADTEST_USERS ?= 20
LOADTEST_SPAWN_RATE ?= 5
LOADTEST_RUN_TIME ?= 60s
LOADTEST_OUT ?= reports/loadtest
# Empty: start inference + gateway locally. A URL: test that gateway (e.g. a cluster's).
LOADTEST_HOST ?=

.PHONY: loadtest loadtest-hpa elk-check kibana-objects prometheus-check

loadtest: install ## Headless Locust run against a local stack; CSV + HTML in reports/loadtest
	$(PY) loadtest/run_local.py --users $(LOADTEST_USERS) --spawn-rate $(LOADTEST_SPAWN_RATE) \
		--run-time $(LOADTEST_RUN_TIME) --out $(LOADTEST_OUT) \
		$(if $(LOADTEST_HOST),--host $(LOADTEST_HOST))

loadtest-hpa: install ## Step load for the HPA against LOADTEST_HOST (LOADTEST_STEP_* settings)
	@test -n "$(LOADTEST_HOST)" || { echo "set LOADTEST_HOST to the gateway's URL" >&2; exit 1; }
	$(PY) loadtest/run_local.py --shape --host $(LOADTEST_HOST) --out $(LOADTEST_OUT)

elk-check: install ## ELK checks: configs, templates, dashboards, real service logs vs ECS
	$(UV) run --frozen pytest elk/tests -p no:cacheprovider

prometheus-check: install ## Alert rules: promtool check + unit tests, a real Prometheus scraping the services, chart and compose wiring
	$(UV) run --frozen pytest infra/prometheus/tests helm/tests/test_chart_monitoring.py infra/tests/test_compose.py -p no:cacheprovider -q

kibana-objects: install ## Rebuild elk/kibana/saved_objects.ndjson from its builder
	$(PY) elk/kibana/build_saved_objects.py
