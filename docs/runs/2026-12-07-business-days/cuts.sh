set -e
cd /tmp/bd
for cut in 20 30 40; do
python3 - $cut <<'PY'
import csv, collections, sys
cut=int(sys.argv[1])
rows = list(csv.reader(open('/work/shared/data/stocks_daily.csv')))
h, data = rows[0], rows[1:]
by = collections.defaultdict(list)
for r in data: by[r[0]].append(r)
out = [h]
for k, rs in by.items():
    rs.sort(key=lambda r: r[1]); out += rs[:-cut]
csv.writer(open(f'cut{cut}.csv','w', newline='')).writerows(out)
PY
for s in 1 2 3; do for b in adv10 adv11; do
  if [ $b = adv10 ]; then H=14; else H=10; fi
  rm -rf C$b$s; /tmp/$b/lstm train forecast --data cut$cut.csv --column close --time-column date --id-column ticker --holdout $H --out C$b$s --quiet --seed $s > /dev/null 2>&1
  echo "cut $cut $b seed $s: $(/tmp/$b/lstm eval --model C$b$s --data cut$cut.csv | sed -n 3,4p | awk '{print $1, $2, $3}' | tr '\n' ' ')"
done; done; done
