/**
 * Entry point. The page runs under `require-trusted-types-for 'script'` and never turns a string
 * into HTML or script, so it defines no Trusted Types policy: any such sink use would be refused by
 * the browser (and reported as a CSP violation).
 */
import { render } from 'preact';
import './styles.css';
import { App } from './ui/App';

render(<App />, document.getElementById('app')!);
