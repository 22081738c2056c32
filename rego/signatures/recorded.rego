# For gator, which has no external_data (gatekeeper#2659): the provider's answers are read from
# answers recorded by `signet record` into a ConfigMap named `signet-recorded-answers`, given to
# gator as inventory. The generator puts this module into gator/template.yaml in place of the
# provider call; an image without a recorded answer is denied, as a missing answer is.
package signetimagesignatures

recorded_answer(request) := {
	"responses": [[item.key, item.value] |
		some item in recorded_items
		item.key in request.keys
		not item.error
	],
	"errors": [[item.key, item.error] |
		some item in recorded_items
		item.key in request.keys
		item.error
	],
	"status_code": 200,
	"system_error": "",
}

recorded_items contains item if {
	some namespace
	config_map := data.inventory.namespace[namespace].v1.ConfigMap["signet-recorded-answers"]
	some name, text in config_map.data
	endswith(name, ".json")
	some item in json.unmarshal(text).response.items
}
