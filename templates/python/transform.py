"""{{name}}: a waystream transform. It passes every point through unchanged; change
process() to do something with them (see the waystream_guest package's README)."""

from waystream_guest import Transform, info


class Passthrough(Transform):
    def init(self, config):
        # config: the module's `config` table from the pipeline, as a dict.
        self.config = config
        info(f"{{name}}: config {config}")

    def process(self, batch):
        return batch.points
