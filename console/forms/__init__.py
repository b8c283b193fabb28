"""The console's forms, by area. Each turns HTML input into the dict the REST API would
receive; ``common.call_service`` sends it through the API's write serializer and a service."""
