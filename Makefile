# The two set-up commands of the README, and their building blocks.
#   make demo   the main job on a local Kafka broker that it starts itself
#   make test   the whole test suite against a real Kafka broker
# Needs Python 3.11+, Java 17+ and Maven; everything else is installed here on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
JARS    = deploy/kafka/target/libs/.fetched

.PHONY: demo test bench lint typecheck install jars clean

demo: install jars
	$(BIN)/processor demo

test: install jars
	$(BIN)/pytest

bench: install jars
	$(BIN)/processor bench

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# The pure engine and the contracts type-check clean (the rest of the package is not held to it yet).
typecheck: install
	$(BIN)/mypy processor/engine processor/contracts.py

install: $(VENV)/.installed

jars: $(JARS)

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

$(JARS): deploy/kafka/pom.xml
	rm -rf deploy/kafka/target/libs  # jars of an older pom.xml must not stay on the class path
	mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies
	touch $@

# The integration tests on Apache Kafka 3.9 (many payers run 3.x): the same pom.xml, copied so that Maven puts
# Kafka 3.9's jars in a folder of their own, and KAFKA_LIBS makes LocalBroker run them. Not part of `make test`
# (it runs the integration tests a second time); see docs/deploy.md.
KAFKA39     = 3.9.2
KAFKA39_DIR = deploy/kafka/target/kafka-$(KAFKA39)

.PHONY: test-kafka39
test-kafka39: install $(KAFKA39_DIR)/target/libs/.fetched
	KAFKA_LIBS=$(CURDIR)/$(KAFKA39_DIR)/target/libs $(BIN)/pytest tests/integration

$(KAFKA39_DIR)/target/libs/.fetched: deploy/kafka/pom.xml
	rm -rf $(KAFKA39_DIR) && mkdir -p $(KAFKA39_DIR) && cp deploy/kafka/pom.xml $(KAFKA39_DIR)/
	mvn -q -B -f $(KAFKA39_DIR)/pom.xml -Dkafka.version=$(KAFKA39) dependency:copy-dependencies
	touch $@

clean:
	rm -rf $(VENV) deploy/kafka/target .pytest_cache
