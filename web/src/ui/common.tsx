/** Small shared pieces: a modal dialog on the native <dialog> (focus trap, Escape), form fields, errors. */
import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { describeError } from '../lib/api';

export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      class={props.wide ? 'dialog wide' : 'dialog'}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
    >
      <header class="dialog-head">
        <h2 id={titleId}>{props.title}</h2>
        <button type="button" class="icon" aria-label="Close" onClick={props.onClose}>
          ✕
        </button>
      </header>
      <div class="dialog-body">{props.children}</div>
    </dialog>
  );
}

export interface FieldProps {
  label: string;
  value: string;
  onInput: (v: string) => void;
  type?: 'text' | 'password' | 'email' | 'number';
  autoComplete?: string;
  required?: boolean;
  name?: string;
  inputMode?: 'numeric' | 'text';
  autoFocus?: boolean;
  hint?: string;
  maxLength?: number;
}

export function Field(props: FieldProps) {
  const id = useId();
  const hintId = useId();
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (props.autoFocus) input.current?.focus();
  }, []);
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <input
        id={id}
        name={props.name}
        // Preact 11 types `type` as a union of per-type attribute sets; the value here is one of four.
        {...({ type: props.type ?? 'text' } as Record<string, string>)}
        value={props.value}
        autoComplete={props.autoComplete}
        required={props.required}
        inputMode={props.inputMode}
        ref={input}
        maxLength={props.maxLength}
        aria-describedby={props.hint ? hintId : undefined}
        onInput={(e) => props.onInput((e.currentTarget as HTMLInputElement).value)}
      />
      {props.hint && (
        <small id={hintId} class="hint">
          {props.hint}
        </small>
      )}
    </div>
  );
}

/** A password input: current password unless `isNew` (then with the length rule as a hint). */
export function PasswordField(
  props: Omit<FieldProps, 'type' | 'autoComplete' | 'label'> & { label?: string; isNew?: boolean },
) {
  const { isNew, ...rest } = props;
  return (
    <Field
      label="Password"
      type="password"
      autoComplete={isNew ? 'new-password' : 'current-password'}
      required
      {...(isNew ? { hint: '8–128 characters' } : {})}
      {...rest}
    />
  );
}

/** A button that runs an async action through a form's `useAction` (busy flag, error slot). */
export function ActionButton(props: {
  action: ReturnType<typeof useAction>;
  onAct: () => Promise<void>;
  danger?: boolean;
  children: ComponentChildren;
}) {
  return (
    <button
      type="button"
      class={props.danger ? 'danger' : undefined}
      disabled={props.action.busy}
      onClick={() => void props.action.run(props.onAct)}
    >
      {props.children}
    </button>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {typeof error === 'string' ? error : describeError(error)}
    </p>
  );
}

/** Runs an async action with a busy flag and an error slot for a form. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

export const bdi = (text: string) => <bdi>{text}</bdi>;
