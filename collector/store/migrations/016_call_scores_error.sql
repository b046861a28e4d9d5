-- Error scores in the dashboards' copy of the scores. `call_scores` had no `error` column, so a
-- failed evaluation (value 0, `error` set: a judge that timed out, an evaluator that raised)
-- was averaged as a 0 by every evaluation and experiment panel, and as a 1 when its evaluator
-- is lower-is-better. An error is a failure, never a value: the panels now leave it out.
ALTER TABLE {database}.call_scores ADD COLUMN IF NOT EXISTS error String DEFAULT '';

ALTER TABLE {database}.call_scores_mv MODIFY QUERY
SELECT
    s.timestamp AS timestamp, s.trace_id AS trace_id, s.span_id AS span_id, s.name AS name,
    s.value AS value, s.passed AS passed, s.explanation AS explanation, s.source AS source,
    s.author AS author, s.experiment_id AS experiment_id, s.dataset_item_id AS dataset_item_id,
    c.timestamp AS call_timestamp, c.service_name AS service_name, c.provider AS provider,
    c.model AS model, c.prompt_name AS prompt_name, c.prompt_version AS prompt_version,
    s.direction AS direction, s.experiment_id != '' OR c.is_experiment AS is_experiment,
    s.error AS error
FROM {database}.scores AS s
LEFT JOIN (
    SELECT span_id, timestamp, service_name, provider, model, prompt_name, prompt_version,
        is_experiment
    FROM {database}.llm_calls
    WHERE span_id IN (SELECT span_id FROM {database}.scores)
) AS c ON c.span_id = s.span_id;

-- The error scores stored before: marked by their key and timestamp (a mutation cannot copy the
-- text across tables; `scores.error` keeps it).
ALTER TABLE {database}.call_scores UPDATE error = 'error (stored before migration 016)' WHERE (source, name, trace_id, span_id, author, experiment_id, dataset_item_id, timestamp) IN (SELECT source, name, trace_id, span_id, author, experiment_id, dataset_item_id, timestamp FROM {database}.scores WHERE error != '') SETTINGS mutations_sync = 2, allow_nondeterministic_mutations = 1;
