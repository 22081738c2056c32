package signetimagesignatures_recorded_test

import data.signetimagesignatures

answers_json := json.marshal({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderResponse", "response": {
	"idempotent": true,
	"items": [
		{"key": "r.test/a:1", "value": {"version": 1, "verified": ["dev-team"], "failures": []}},
		{"key": "r.test/bad:1", "error": "INVALID_REFERENCE: bad"},
	],
	"systemError": "",
}})

inventory := {"namespace": {"gatekeeper-system": {"v1": {"ConfigMap": {"signet-recorded-answers": {"data": {"answers.json": answers_json}}}}}}}

test_recorded_answers_are_returned_for_the_asked_keys if {
	answer := signetimagesignatures.recorded_answer({"keys": ["r.test/a:1", "r.test/bad:1", "r.test/none:1"]}) with data.inventory as inventory
	answer.responses == [["r.test/a:1", {"version": 1, "verified": ["dev-team"], "failures": []}]]
	answer.errors == [["r.test/bad:1", "INVALID_REFERENCE: bad"]]
	answer.system_error == ""
}

test_without_recordings_nothing_is_answered if {
	answer := signetimagesignatures.recorded_answer({"keys": ["r.test/a:1"]}) with data.inventory as {}
	answer.responses == []
}
