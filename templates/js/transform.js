// {{name}}: a waystream transform. It passes every point through unchanged; change
// process() to do something with them (see @waystream/guest's README).
import { Transform, info } from '@waystream/guest';

export default class Passthrough extends Transform {
  init(config) {
    // config: the module's `config` table from the pipeline, parsed.
    this.config = config;
    info(`{{name}}: config ${JSON.stringify(config)}`);
  }

  process(batch) {
    return batch.points;
  }
}
