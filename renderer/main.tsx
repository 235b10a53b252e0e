import { createRoot } from 'react-dom/client';
import { App } from './App.js';
import { startSync } from './store.js';
import './styles.css';

createRoot(document.getElementById('root')!).render(<App />);
void startSync();
