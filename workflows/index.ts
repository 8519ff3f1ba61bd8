/** The workflow types this worker serves; each name is the type the Temporal CLI starts. */
export { campaign } from './campaign';
export { experiment } from './experiment';
export { nightly } from './nightly';
