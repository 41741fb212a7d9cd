// The web app's entry: mounts the page (src/web/app/app.tsx) once the document is parsed.
import { render } from 'preact';
import { App } from './app.tsx';
import './style.css';

render(<App />, document.getElementById('app')!);
